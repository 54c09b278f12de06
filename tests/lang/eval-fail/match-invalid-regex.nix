# match with an invalid regex
builtins.match "(" "x"
