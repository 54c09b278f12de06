# readFile on a text file under lib
builtins.readFile ./lib/data.txt
