FROM debian:12
RUN cd /usr/src && make
RUN sudo make install
USER 1000
CMD ["bash"]
