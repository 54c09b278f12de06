# binary operators are not allowed directly in list elements
[ 1 == 1 ]
