# 1e3 lexes as the int 1 applied to identifier e3
let e3 = 0; in 1e3
