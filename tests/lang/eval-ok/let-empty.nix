# let with no bindings is valid
let in 1
