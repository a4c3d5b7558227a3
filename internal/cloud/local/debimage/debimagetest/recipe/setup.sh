# Fixture shell step: no #! line, so the builder runs it with sh -e.
mkdir -p /etc/kiln-fixture
echo "shell step ran" >/etc/kiln-fixture/shell.txt
chown root:adm /etc/kiln-fixture/shell.txt
chmod 0640 /etc/kiln-fixture/shell.txt
# The recipe's variables arrive in the environment; the secret itself must
# not reach the image, only a digest of it.
echo "flavour $fixture_flavour" >/etc/kiln-fixture/flavour.txt
printf '%s' "$fixture_token" | sha256sum | cut -d' ' -f1 >/etc/kiln-fixture/token.sha256
