FROM alpine:3.22
RUN echo a \

    && echo b
USER 1000
CMD ["true"]
