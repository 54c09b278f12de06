# a file with only a comment is empty

