# // is right-associative and chains
{ a = 1; } // { a = 2; b = 2; } // { b = 3; c = 3; }
