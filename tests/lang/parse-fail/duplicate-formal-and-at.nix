# formal duplicated by the @ name
{ a }@a: a
