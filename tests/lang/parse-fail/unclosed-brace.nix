# unclosed {
{ a = 1;
