# attribute bound with : instead of =
{ a: 1; }
