# inherit duplicating a binding
let x = 1; in { inherit x; x = 2; }
