# elemAt past the end of a list
builtins.elemAt [ 1 2 3 ] 3
