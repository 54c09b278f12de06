# toString on (nested) lists joins with spaces
[ (toString [ 1 [ 2 3 ] "a" ]) (toString [ true false null 1 ]) (toString [ ]) (toString [ [ ] [ ] ]) ]
