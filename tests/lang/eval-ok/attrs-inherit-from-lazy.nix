# inherit (e) is lazy: unused missing attribute is fine if not in result
let src = { x = 1; }; s = { inherit (src) x nope; }; in s.x
