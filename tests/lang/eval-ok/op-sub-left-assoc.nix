# subtraction and division are left-associative
[ (10 - 3 - 2) (100 / 10 / 5) (2 * 3 / 4) ]
