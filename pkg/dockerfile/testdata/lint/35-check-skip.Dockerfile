# check=skip=JSONArgsRecommended,StageNameCasing
FROM alpine:3.22 AS Final
CMD true
USER 1000
