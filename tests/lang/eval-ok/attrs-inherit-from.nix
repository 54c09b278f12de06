# inherit (e) x y; copies attributes from an expression
let src = { x = 1; y = 2; z = 3; }; in { inherit (src) x y; w = 0; }
