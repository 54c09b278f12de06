# ? on a non-set value is false
[ (1 ? a) ("s" ? a) (null ? a) ([ ] ? a) ]
