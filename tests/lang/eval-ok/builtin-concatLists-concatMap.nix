# concatLists and concatMap
[ (builtins.concatLists [ [ 1 ] [ ] [ 2 3 ] ]) (builtins.concatMap (x: [ x x ]) [ 1 2 ]) (builtins.concatLists [ ]) ]
