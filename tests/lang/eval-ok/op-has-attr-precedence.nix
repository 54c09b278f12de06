# ? binds tighter than == and &&
let s = { a = 1; }; in [ (s ? a == true) (s ? a && s ? b) (s ? a || s ? b) ]
