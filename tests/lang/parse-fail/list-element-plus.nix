# + directly inside a list is a syntax error
[ 1 + 2 ]
