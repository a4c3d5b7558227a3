# Fixture shell step: no #! line, so the builder runs it with sh -e.
mkdir -p /etc/kiln-fixture
echo "shell step ran" >/etc/kiln-fixture/shell.txt
chown root:adm /etc/kiln-fixture/shell.txt
chmod 0640 /etc/kiln-fixture/shell.txt
