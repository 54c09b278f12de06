# @ binding with only ellipsis
args@{ ... }: args
