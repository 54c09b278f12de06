# missing ; after a binding
{ a = 1 b = 2; }
