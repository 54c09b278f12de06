# // with a non-set
{ a = 1; } // [ ]
