# selecting a missing attribute from a set with several attributes
{ alpha = 1; beta = 2; gamma = 3; delta = 4; }.epsilon
