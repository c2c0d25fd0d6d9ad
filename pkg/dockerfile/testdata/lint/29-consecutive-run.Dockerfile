FROM debian:12
RUN echo a
RUN echo b
RUN echo c
USER 1000
CMD ["bash"]
