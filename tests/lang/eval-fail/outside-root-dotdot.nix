# readFile may not leave the project root (the folder of the file evaluated)
builtins.readFile ../README.md
