DROP TABLE missions;
