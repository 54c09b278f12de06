# a dynamic key that is not a string
{ ${toString 1 + ""} = 1; ${1} = 2; }
