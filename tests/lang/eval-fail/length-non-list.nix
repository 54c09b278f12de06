# length of a string
builtins.length "abc"
