# substring with a negative start
builtins.substring (-1) 2 "abc"
