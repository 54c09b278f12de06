# then without if
then 1 else 2
