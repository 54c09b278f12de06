# helper imported by import-* cases (not a case itself)
{
  greeting = "hello from helper";
  double = x: x * 2;
}
