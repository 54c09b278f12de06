# toString on lists omits the separator after an empty-list element
[ (toString [ 1 [ ] 2 ]) (toString [ [ ] 1 ]) (toString [ 1 [ ] ]) (toString [ null 1 ]) (toString [ 1 [ [ ] ] 2 ]) ]
