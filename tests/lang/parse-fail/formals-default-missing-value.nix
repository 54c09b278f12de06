# ? without a default expression
{ a ? }: a
