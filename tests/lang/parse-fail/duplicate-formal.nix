# duplicate formal argument
{ a, a }: a
