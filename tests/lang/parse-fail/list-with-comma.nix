# list elements are not comma-separated
[ 1, 2 ]
