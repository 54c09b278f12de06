# formals without separating comma
{ a b }: 1
