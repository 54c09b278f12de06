# selection without a name after the dot
{ a = 1; }.
