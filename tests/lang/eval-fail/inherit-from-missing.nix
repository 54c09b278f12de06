# inherit (e) x where e lacks x, forced in result
let src = { y = 1; }; in { inherit (src) x; }
