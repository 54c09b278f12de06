# + does not concatenate lists
[ 1 ] + [ 2 ]
