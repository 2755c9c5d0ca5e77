//! Events published to RabbitMQ. (Being written.)
