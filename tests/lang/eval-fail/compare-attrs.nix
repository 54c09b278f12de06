# sets cannot be ordered
{ } < { }
