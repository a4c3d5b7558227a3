# Fixture step that fails after printing more lines than an error keeps.
echo "about to fail"
i=1
while [ "$i" -le 30 ]; do
	echo "fixture line $i"
	i=$((i + 1))
done
exit 7
