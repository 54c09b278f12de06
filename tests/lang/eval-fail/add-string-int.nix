# adding a string and an integer
"a" + 1
