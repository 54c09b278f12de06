# empty set and nested empty sets
{ a = { }; b = [ { } ]; }
