# // merges sets, right side wins, shallow
{ a = 1; b = { x = 1; }; } // { b = { y = 2; }; c = 3; }
