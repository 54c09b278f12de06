# missing ; after the last binding
{ a = 1; b = 2 }
