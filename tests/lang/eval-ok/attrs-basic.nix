# simple attribute set, keys come out sorted
{ b = 2; a = 1; c = "three"; }
