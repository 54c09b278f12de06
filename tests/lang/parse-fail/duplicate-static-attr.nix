# duplicate static attribute
{ a = 1; a = 2; }
