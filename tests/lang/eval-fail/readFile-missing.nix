# readFile of a missing file
builtins.readFile ./lib/nope.txt
