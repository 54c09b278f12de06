# two literal set definitions of the same key are merged
{ a = { x = 1; }; a = { y = 2; }; }
